/**
 * The command-line device: `npm run device -- <command> [options]`. A till or a back-office
 * laptop can enroll, set up the catalog, take stock in, sell, take payments, void, and read what
 * the server decided. `npm run device -- --help` lists the commands; `<command> --help` explains
 * one. Output is readable on a terminal and JSON lines with `--json` or when piped; errors go to
 * stderr with a non-zero exit code.
 */
import path from "node:path";
import { ClientError } from "./errors.js";
import { optionHelp, parse, usageLine } from "./cli/args.js";
import { COMMANDS } from "./cli/commands.js";
import type { Command } from "./cli/context.js";
import { createOutput } from "./cli/output.js";

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: npm run device -- <command> --data DIR [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "npm run device -- <command> --help   shows a command's options and an example",
    "Amounts are in minor units (350 = 3.50). Add --offline to record without a network.",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return [`${c.name}: ${c.summary}`, "", `usage: ${usageLine(c.name, c.options)}`, "", "options:", optionHelp(c.options), "", `example: ${c.example}`].join("\n");
}

/** The command named by the first one or two words, and the arguments after them. */
function find(argv: string[]): { command: Command; args: string[] } | undefined {
  const two = COMMANDS.find((c) => c.name === `${argv[0]} ${argv[1]}`);
  if (two) return { command: two, args: argv.slice(2) };
  const one = COMMANDS.find((c) => c.name === argv[0]);
  return one ? { command: one, args: argv.slice(1) } : undefined;
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    process.stdout.write(`${overview()}\n`);
    return;
  }
  const found = find(argv);
  if (!found) {
    const words = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]} `)).map((c) => c.name);
    const hint = words.length > 0 ? `did you mean: ${words.join(", ")}?` : "see: npm run device -- --help";
    throw new ClientError("invalid-input", `unknown command ${JSON.stringify(argv.slice(0, 2).join(" "))}; ${hint}`);
  }
  const { command, args } = found;
  const values = parse(command.name, args, command.options);
  if (values.help) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return;
  }
  const json = values.json === true || !process.stdout.isTTY;
  await command.run({ values, dataDir: path.resolve(String(values.data)), out: createOutput(json) });
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof ClientError ? err.code : "error";
    // A person reads a sentence; a script (or a pipe) gets the same as one JSON line.
    process.stderr.write(process.stderr.isTTY ? `error: ${message}\n` : `${JSON.stringify({ error: code, message })}\n`);
    process.exit(1);
  },
);
