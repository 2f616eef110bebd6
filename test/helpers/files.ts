/** Every file under `dir`, however deep (temporary files included); none when it does not exist. */
import { readdir } from "node:fs/promises";
import path from "node:path";

export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}
