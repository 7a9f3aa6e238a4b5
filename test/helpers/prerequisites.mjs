// Programs the test suite runs besides Node, in one place: the test runner (test/run.mjs) names the missing
// ones before and after the run, and the test helpers fail the tests that need one with the same line.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** @type {readonly { command: string; neededBy: string; install: string }[]} */
export const PREREQUISITES = [
  {
    command: 'nats-server',
    neededBy: 'the cluster tests, test/cluster-*.test.ts',
    install:
      'apt-get install nats-server (Debian/Ubuntu), or put a release binary from https://github.com/nats-io/nats-server/releases on PATH',
  },
  { command: 'openssl', neededBy: 'the TLS cluster test', install: 'apt-get install openssl' },
  {
    command: 'systemd-analyze',
    neededBy: 'the deployment example test, test/deploy-examples.test.ts',
    install: 'apt-get install systemd',
  },
  {
    command: 'chromium',
    neededBy: 'the browser tests, test/report-browser.test.ts',
    install: 'apt-get install chromium (Debian; /usr/bin/chromium)',
  },
  {
    command: 'vulkaninfo',
    neededBy:
      "the WebGPU tests, test/device-webgpu.test.ts, with a Vulkan driver: Mesa's lavapipe for a software device",
    install:
      'add "deb http://deb.debian.org/debian bookworm-backports main" to the apt sources, then apt-get install -t bookworm-backports mesa-vulkan-drivers vulkan-tools',
  },
  {
    command: 'strace',
    neededBy:
      'the security tests (no outbound traffic, fsync before rename), test/cluster-network.test.ts and test/study-secure.test.ts',
    install: 'apt-get install strace',
  },
];

/** Whether an executable `command` is on PATH. */
export function onPath(command, path = process.env.PATH ?? '') {
  return path
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        accessSync(join(dir, command), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** One line naming a missing prerequisite and how to get it; undefined when it is on PATH. */
export function missingPrerequisite(command) {
  const p = PREREQUISITES.find((q) => q.command === command);
  if (!p) throw new Error(`unknown prerequisite ${command}`);
  return onPath(command)
    ? undefined
    : `missing prerequisite: ${p.command} is not on PATH (needed by ${p.neededBy}); install: ${p.install}`;
}

/** The lines for every missing prerequisite. */
export function missingPrerequisites() {
  return PREREQUISITES.map((p) => missingPrerequisite(p.command)).filter((l) => l !== undefined);
}
