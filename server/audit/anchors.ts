/**
 * Checks a journal against signed checkpoints and names what it finds. Pure: the chain walk
 * (journal.ts verifyJournal) gives the head and the record hashes at the checkpoints' seqs.
 *
 * What each finding means, for someone with write access to the database but not the key:
 * - `forged-checkpoint`: a checkpoint whose signature does not verify (made or altered by hand);
 * - `resealed`: the record a checkpoint anchors has another hash: records up to it were changed
 *   and the chain sealed again after the checkpoint was signed;
 * - `tail-deleted`: a checkpoint the database itself holds anchors a record past the journal's end;
 * - `rolled-back`: a checkpoint from outside (a device, an earlier audit, the status document)
 *   is later than anything this database knows: the database is an earlier copy (and, if the
 *   journal has since grown past that seq, it diverges from it).
 */
import type { Checkpoint } from "../../shared/checkpoint.js";
import type { ChainHead } from "../materializer/journal.js";
import { checkpointSignatureValid } from "./signer.js";

export interface Anchor {
  checkpoint: Checkpoint;
  /** `database` for the service's own stored ones; otherwise where it came from (a file, the status document). */
  source: string;
}

export type FindingKind = "forged-checkpoint" | "resealed" | "tail-deleted" | "rolled-back";

export interface AnchorFinding {
  kind: FindingKind;
  seq: number;
  source: string;
  message: string;
}

export interface AnchorReport {
  findings: AnchorFinding[];
  /** The valid checkpoint with the highest seq the journal agrees with, if any. */
  anchoredUpTo: Checkpoint | null;
  /** Checkpoints given for other teams (ignored). */
  otherTeams: number;
  checked: number;
}

export function checkAnchors(
  team: string,
  walk: { head: ChainHead; hashAt: ReadonlyMap<number, string> },
  anchors: readonly Anchor[],
  publicKeyPem: string,
): AnchorReport {
  const findings: AnchorFinding[] = [];
  let anchoredUpTo: Checkpoint | null = null;
  let otherTeams = 0;
  const valid: Anchor[] = [];
  for (const a of anchors) {
    const cp = a.checkpoint;
    if (cp.team !== team) {
      otherTeams += 1;
      continue;
    }
    if (!checkpointSignatureValid(cp, publicKeyPem)) {
      findings.push({
        kind: "forged-checkpoint", seq: cp.seq, source: a.source,
        message: `checkpoint seq ${cp.seq} (${a.source}) does not carry a valid signature by the service key ${cp.keyId.slice(0, 16)}: forged or altered`,
      });
      continue;
    }
    valid.push(a);
  }
  // What the database itself vouches for: the latest of its own signed checkpoints.
  const ownLatestAt = valid.filter((a) => a.source === "database").reduce((m, a) => (a.checkpoint.at > m ? a.checkpoint.at : m), "");
  const headSeq = walk.head.seq;
  for (const { checkpoint: cp, source } of valid) {
    const external = source !== "database";
    const newerThanDatabase = external && cp.at > ownLatestAt;
    const signed = `signed at ${cp.at} (${source})`;
    if (cp.seq > headSeq) {
      findings.push(
        newerThanDatabase
          ? {
              kind: "rolled-back", seq: cp.seq, source,
              message: `database rolled back: checkpoint seq ${cp.seq} ${signed} is past the journal's last record, seq ${headSeq}, and this database's own checkpoints end ${ownLatestAt ? `at ${ownLatestAt}` : "before any"}: it is a copy from before that checkpoint`,
            }
          : {
              kind: "tail-deleted", seq: cp.seq, source,
              message: `journal tail deleted: checkpoint seq ${cp.seq} ${signed} anchors a record past the journal's last, seq ${headSeq} (${cp.seq - headSeq} record(s) missing at least)`,
            },
      );
      continue;
    }
    const found = walk.hashAt.get(cp.seq);
    if (found !== cp.head) {
      findings.push(
        newerThanDatabase
          ? {
              kind: "rolled-back", seq: cp.seq, source,
              message: `database rolled back and rewritten: record seq ${cp.seq} has hash ${found?.slice(0, 16) ?? "(none)"}, checkpoint ${signed} anchors ${cp.head.slice(0, 16)}, and this database's own checkpoints end ${ownLatestAt ? `at ${ownLatestAt}` : "before any"}`,
            }
          : {
              kind: "resealed", seq: cp.seq, source,
              message: `journal rewritten and resealed: record seq ${cp.seq} has hash ${found?.slice(0, 16) ?? "(none)"}, but checkpoint ${signed} anchors ${cp.head.slice(0, 16)}: records up to seq ${cp.seq} were changed after it was signed`,
            },
      );
      continue;
    }
    if (!anchoredUpTo || cp.seq > anchoredUpTo.seq) anchoredUpTo = cp;
  }
  return { findings, anchoredUpTo, otherTeams, checked: valid.length };
}
