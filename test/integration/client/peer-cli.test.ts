/**
 * Setting up peer links the way a shop would, with the command-line device in real processes:
 * enrol from what the API's device enrolment answered (the device's key gets certified), listen
 * on the address a person chose and print the pairing code, link from the other tablet with that
 * code or by hearing the listener's announcement; and a link to a wrong address ends with a clear
 * message and a non-zero exit code.
 */
import { stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli, startCli } from "./cli-process.js";
import { createTeam, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";
import { freePort } from "../../../server/db/free-port.js";

let relay: TestRelay;
let team: TestTeam;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-cli-peer");
});

afterAll(async () => {
  await relay?.close();
  await removeTmpDirs();
});

/** Enrols a CLI tablet from the answer of POST /api/teams/:team/devices, as the README shows. */
async function enrol(device: string): Promise<string> {
  const admin = relay.token({ sub: "owner", team: team.team, role: "admin" });
  const res = await fetch(`${relay.service.url}/api/teams/${team.team}/devices`, {
    method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ device }),
  });
  expect(res.status).toBe(201);
  const data = await tmpDir(device);
  const file = path.join(data, "enrollment.json");
  await writeFile(file, await res.text());
  const enroll = await runCli(["enroll", "--data", data, "--server", relay.service.syncUrl, "--enrollment", file]);
  expect(enroll.stderr).toBe("");
  expect(enroll.code).toBe(0);
  expect(enroll.lines[0]).toMatchObject({ enrolled: true, team: team.team, device });
  expect(enroll.lines[0]?.certifiedUntil).toBeTypeOf("string");
  // The private key stays in the data folder, readable by its owner only.
  expect((await stat(path.join(data, "device-key.json"))).mode & 0o777).toBe(0o600);
  return data;
}

it("two tablets pair by the listener's code on the address it bound or by its announcement, and a wrong address fails loudly", async () => {
  const [dataA, dataB] = [await enrol("till-a"), await enrol("till-b")];

  const udp = String(await freePort());
  const listener = startCli(["peer", "--data", dataA, "--listen", "0", "--host", "0.0.0.0", "--announce", "--discovery-port", udp, "--for", "90000", "--offline"]);
  const shown = await listener.waitForLine((l) => "listening" in l);
  expect(shown.host).toBe("0.0.0.0");
  const code = String(shown.code);
  expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  const address = (shown.addresses as string[]).find((a) => a.startsWith("ws://127.0.0.1:"));
  expect(address).toBe(`ws://127.0.0.1:${String(shown.listening)}/#code=${code}`);

  const linked = await runCli(["peer", "--data", dataB, "--connect", address!, "--for", "500", "--offline"]);
  expect(linked.stderr).toBe("");
  expect(linked.code).toBe(0);
  expect(linked.lines).toContainEqual({ peer: address, device: "till-a", user: "owner", code });
  expect(linked.lines).toContainEqual({ linked: address });
  await listener.waitForLine((l) => l.device === "till-b");

  // Or without typing anything: till-b hears till-a's announcement on the network and links.
  const found = await runCli(["peer", "--data", dataB, "--discover", "--discovery-port", udp, "--for", "500", "--offline"]);
  expect(found.stderr).toBe("");
  expect(found.code).toBe(0);
  const heard = found.lines.find((l) => l.found === "till-a");
  expect(String(heard?.address)).toMatch(new RegExp(`^ws://[0-9.]+:${String(shown.listening)}/#code=${code}$`));
  expect(found.lines).toContainEqual({ linked: heard?.address });

  // A wrong code for the right address: refused, said so, exit 1.
  const wrongCode = code === "ABCD-EFGH" ? "ABCD-EFGJ" : "ABCD-EFGH";
  const pinned = await runCli(["peer", "--data", dataB, "--connect", `ws://127.0.0.1:${String(shown.listening)}/`, "--code", wrongCode, "--link-timeout", "4000", "--offline"]);
  expect(pinned.code).toBe(1);
  expect(pinned.stderr).toContain(`device till-a has key ${code}, not the paired ${wrongCode}`);

  // Nothing listens on this port: the command says so and fails.
  const port = await freePort();
  const wrong = await runCli(["peer", "--data", dataB, "--connect", `ws://127.0.0.1:${port}/`, "--link-timeout", "3000", "--offline"]);
  expect(wrong.code).toBe(1);
  const err = JSON.parse(wrong.stderr.trim().split("\n").at(-1)!) as { error: string; message: string };
  expect(err.error).toBe("peer-link");
  expect(err.message).toMatch(new RegExp(`^no link to ws://127\\.0\\.0\\.1:${port}/: socket error: .*ECONNREFUSED`));
  listener.kill();
  await listener.exited;
}, 180_000);
