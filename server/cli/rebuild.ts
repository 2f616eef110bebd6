/**
 * `npm run rebuild -- [--team <id>]`: recomputes every journal-derived projection from the
 * journal alone, with a progress bar. Stop the materializer first (MATERIALIZER=off, or stop the
 * service): the rebuild and a live materializer would write the same documents.
 */
import { rebuildTeam } from "../materializer/rebuild.js";
import { collections } from "../materializer/collections.js";
import { connectCli, parseArgs, progress, selectedTeams } from "./common.js";

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cli = await connectCli();
  try {
    const c = collections(cli.db);
    const teams = await selectedTeams(cli.db, args.team);
    for (const team of teams) {
      const started = Date.now();
      const records = await rebuildTeam(c, team, (done, total) => progress(`rebuilding ${team}`, done, total));
      console.log(`team ${team}: ${records} journal records projected in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await cli.close();
  }
}

main().catch((err: unknown) => {
  console.error(`rebuild: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
