/**
 * How to start another of our entry points as a child process. Installed, everything runs as
 * compiled JavaScript under plain `node` (`dist/`, built by `npm install`): no TypeScript
 * compiler at run time, so processes start in a fraction of a second. From source (tests,
 * `tsx`), the same call starts the `.ts` file through tsx.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The node arguments that run `relative` (a `.ts` path, relative to the module at `fromUrl`) in
 * the same form as that module: its compiled `.js` twin when `fromUrl` is compiled JavaScript.
 */
export function entryArgs(fromUrl: string, relative: string): string[] {
  const from = fileURLToPath(fromUrl);
  const target = path.resolve(path.dirname(from), relative);
  if (from.endsWith(".js")) return [target.replace(/\.ts$/, ".js")];
  return ["--import", "tsx", target];
}

/** The folder holding package.json: the same from source and from `dist/`. */
export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, "package.json"))) return d;
    if (path.dirname(d) === d) return dir;
  }
}
