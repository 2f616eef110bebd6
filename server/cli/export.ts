/**
 * `npm run export -- --team T [--from YYYY-MM-DD] [--to YYYY-MM-DD] --out DIR [--public-key FILE]`:
 * writes the team's journal decided in the period, its checkpoints and projections as JSON Lines
 * (and CSV for the tables) into DIR, with manifest.json listing each file's rows and SHA-256
 * (docs/AUDIT.md "Export"). Read-only on the database; refuses to overwrite files. Exit code 0,
 * or 2 on errors.
 */
import { exportTeam } from "../audit/export.js";
import { loadPublicKey } from "../audit/load.js";
import { collections } from "../materializer/collections.js";
import { connectCli, parseArgs } from "./common.js";

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const str = (name: string): string | undefined => (typeof args[name] === "string" ? (args[name] as string) : undefined);
  const team = str("team");
  const out = str("out");
  if (!team || !out) throw new Error("--team and --out are required");
  const cli = await connectCli();
  try {
    const publicKeyPem = await loadPublicKey(cli.config, str("public-key"));
    const from = str("from");
    const to = str("to");
    const manifest = await exportTeam(collections(cli.db), {
      team, outDir: out, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(publicKeyPem ? { publicKeyPem } : {}),
    });
    const j = manifest.journal;
    console.log(`team ${team}: exported to ${out}: journal seq ${j.firstSeq ?? "-"}..${j.lastSeq ?? "-"}, ${manifest.files.length} files (manifest.json)`);
    for (const f of manifest.files) console.log(`  ${f.name}: ${f.rows} rows, sha256 ${f.sha256}`);
    return 0;
  } finally {
    await cli.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`export: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
