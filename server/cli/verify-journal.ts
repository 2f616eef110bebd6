/**
 * `npm run verify-journal -- [--team <id>]`: checks each team's journal hash chain and says
 * where it breaks. Exit code 0 when every chain holds, 1 when one breaks, 2 on usage errors.
 */
import { collections } from "../materializer/collections.js";
import { verifyJournal } from "../materializer/journal.js";
import { connectCli, parseArgs, progress, selectedTeams } from "./common.js";

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const cli = await connectCli();
  try {
    const c = collections(cli.db);
    const teams = await selectedTeams(cli.db, args.team);
    let broken = 0;
    for (const team of teams) {
      const total = await c.journal.countDocuments({ team });
      const result = await verifyJournal(c, team, (n) => progress(`verifying ${team}`, n, total));
      if (result.breaks.length === 0) {
        console.log(`team ${team}: ${result.records} records, chain intact, head seq ${result.head.seq} ${result.head.recordHash.slice(0, 16)}`);
        continue;
      }
      broken += 1;
      console.log(`team ${team}: chain BROKEN at ${result.breaks.length} place(s):`);
      for (const b of result.breaks) console.log(`  seq ${b.seq} record ${b.id}: ${b.reason}`);
    }
    return broken > 0 ? 1 : 0;
  } finally {
    await cli.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`verify-journal: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
