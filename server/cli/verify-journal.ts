/**
 * `npm run verify-journal -- [--team <id>] [--checkpoint FILE[,FILE...]] [--public-key FILE] [--deep]`:
 * checks each team's journal hash chain, then the chain against the signed checkpoints the
 * database holds and any given from outside (a device's export, an earlier audit), and names
 * what it finds: a changed record, a resealed rewrite, a deleted tail, a rolled-back database,
 * a forged checkpoint (docs/AUDIT.md). `--deep` (`npm run audit`) also checks each record's entry
 * hash, re-derives every verdict and its effects with the shared rules, and compares every
 * projection with what the journal implies (server/audit/deep.ts). Read-only. Exit code 0 when
 * all holds, 1 when something does not, 2 on usage errors.
 */
import { deepVerify, type DeepReport } from "../audit/deep.js";
import { checkAnchors, type Anchor } from "../audit/anchors.js";
import { loadPublicKey, readCheckpointFile } from "../audit/load.js";
import { withoutStorage } from "../materializer/anchor.js";
import { collections } from "../materializer/collections.js";
import { verifyJournal } from "../materializer/journal.js";
import { connectCli, parseArgs, progress, selectedTeams } from "./common.js";

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const files = typeof args.checkpoint === "string" ? args.checkpoint.split(",").filter((f) => f !== "") : [];
  const given: Anchor[] = [];
  for (const file of files) for (const checkpoint of await readCheckpointFile(file)) given.push({ checkpoint, source: file });
  const cli = await connectCli();
  try {
    const publicKeyPem = await loadPublicKey(cli.config, typeof args["public-key"] === "string" ? args["public-key"] : undefined);
    const c = collections(cli.db);
    const teams = await selectedTeams(cli.db, args.team);
    let broken = 0;
    for (const team of teams) {
      const stored: Anchor[] = (await c.journalCheckpoints.find({ team }).toArray()).map((d) => ({
        checkpoint: withoutStorage(d),
        source: d.source === "signed" ? "database" : "status document, kept as a witness at start",
      }));
      const anchors = [...stored, ...given.filter((a) => a.checkpoint.team === team)];
      if (anchors.length > 0 && !publicKeyPem) {
        throw new Error("checkpoints to check but no public key: give --public-key, JWT_PUBLIC_KEY, or the service's DATA_DIR");
      }
      const total = await c.journal.countDocuments({ team });
      const walk = await verifyJournal(c, team, (n) => progress(`verifying ${team}`, n, total), new Set(anchors.map((a) => a.checkpoint.seq)));
      const report = publicKeyPem ? checkAnchors(team, walk, anchors, publicKeyPem) : { findings: [], anchoredUpTo: null, checked: 0, otherTeams: 0 };
      const anchored = report.anchoredUpTo
        ? `anchored by a signed checkpoint up to seq ${report.anchoredUpTo.seq} (${report.anchoredUpTo.at}), ${walk.head.seq - report.anchoredUpTo.seq} record(s) after it`
        : "no signed checkpoint anchors it";
      const deep = args.deep === true ? await deepVerify(c, cli.db, team) : undefined;
      if (deep) printDeep(deep);
      const deepFailed = deep !== undefined && (deep.problems.length > 0 || deep.differences.length > 0 || deep.closedPeriods.length > 0);
      if (deepFailed) broken += 1;
      if (walk.breaks.length === 0 && report.findings.length === 0) {
        console.log(`team ${team}: ${walk.records} records, chain intact, head seq ${walk.head.seq} ${walk.head.recordHash.slice(0, 16)}; ${report.checked} checkpoint(s) checked, ${anchored}`);
        continue;
      }
      if (!deepFailed) broken += 1;
      console.log(`team ${team}: chain BROKEN at ${walk.breaks.length + report.findings.length} place(s) (${walk.records} records, head seq ${walk.head.seq}; ${anchored}):`);
      for (const b of walk.breaks) console.log(`  seq ${b.seq} record ${b.id}: ${b.reason}`);
      for (const f of report.findings) console.log(`  ${f.kind.toUpperCase()} seq ${f.seq}: ${f.message}`);
    }
    if (given.length > 0 && given.every((a) => !teams.includes(a.checkpoint.team))) {
      console.log(`note: none of the ${given.length} checkpoint(s) given is for the team(s) checked`);
    }
    return broken > 0 ? 1 : 0;
  } finally {
    await cli.close();
  }
}

/** At most this many lines per kind of finding: a wiped collection would print one per document. */
const SHOWN = 200;

function printDeep(r: DeepReport): void {
  const verdict = r.problems.length === 0 && r.differences.length === 0 && r.closedPeriods.length === 0 ? "all consistent" : "DIFFERENCES";
  console.log(
    `team ${r.team}: deep check of ${r.records} records: ${r.problems.length} record problem(s), ${r.differences.length} projection difference(s)` +
      `${r.closedPeriods.length > 0 ? `, ${r.closedPeriods.length} closed-period finding(s)` : ""}: ${verdict}`,
  );
  for (const line of r.closedPeriods.slice(0, SHOWN)) console.log(`  ${line}`);
  for (const p of r.problems.slice(0, SHOWN)) console.log(`  RECORD seq ${p.seq} ${p.id}: ${p.reason}`);
  if (r.problems.length > SHOWN) console.log(`  ... and ${r.problems.length - SHOWN} more record problem(s)`);
  for (const d of r.differences.slice(0, SHOWN)) {
    console.log(`  PROJECTION ${d.collection} ${d.id} ${d.field}: expected ${JSON.stringify(d.expected)}, found ${JSON.stringify(d.found)}`);
  }
  if (r.differences.length > SHOWN) console.log(`  ... and ${r.differences.length - SHOWN} more difference(s)`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`verify-journal: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
