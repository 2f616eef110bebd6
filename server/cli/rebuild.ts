/**
 * `npm run rebuild -- [--team <id>]`: recomputes every journal-derived projection from the
 * journal alone, and the item, group and customer rows from the team's registered catalog (read
 * from DATA_DIR), with a progress bar. Stop the service first: the rebuild and a live
 * materializer would write the same documents.
 */
import { findForeignCatalogRows } from "../materializer/catalog-rows.js";
import { rebuildTeam } from "../materializer/rebuild.js";
import { collections } from "../materializer/collections.js";
import { connectCli, parseArgs, progress, selectedTeams } from "./common.js";
import { loadRegisteredCatalog } from "./stored-catalog.js";

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cli = await connectCli();
  try {
    const c = collections(cli.db);
    const teams = await selectedTeams(cli.db, args.team);
    for (const team of teams) {
      const started = Date.now();
      const catalog = await loadRegisteredCatalog(cli.db, cli.config.dataDir, team, cli.config.relayStorage);
      if (catalog.ok) {
        const foreign = await findForeignCatalogRows(c, team, catalog.doc);
        const n = foreign.items.length + foreign.groups.length + foreign.customers.length;
        if (n > 0) {
          console.log(
            `team ${team}: removing ${foreign.items.length} item, ${foreign.groups.length} group and ${foreign.customers.length} customer rows ` +
              `not from its registered catalog ${catalog.documentId}: ${[...foreign.items, ...foreign.groups, ...foreign.customers].slice(0, 10).join(", ")}`,
          );
        }
      } else {
        console.log(`team ${team}: ${catalog.reason}; its item, group and customer rows are kept as they are`);
      }
      const records = await rebuildTeam(c, team, (done, total) => progress(`rebuilding ${team}`, done, total), {}, catalog.ok ? catalog.doc : undefined);
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
