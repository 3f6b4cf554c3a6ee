#!/usr/bin/env node
/**
 * The `gpulab` command line: `npm run gpulab -- <command> …` or `node --import tsx apps/cli/src/main.ts <command> …`
 * (apps/cli/bin/gpulab runs it from any directory). Wires the process into runCli: streams, environment, and Ctrl-C —
 * the first aborts the command's signal (uploads stop resumably, a followed job is left running), a second exits.
 */
import { setMaxListeners } from 'node:events';
import { runCli } from './cli';

const controller = new AbortController();
// One signal is shared by every request and file stream of a command (each adds a listener while it runs).
setMaxListeners(0, controller.signal);
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts > 1) process.exit(130);
  controller.abort(Object.assign(new Error('interrupted'), { name: 'AbortError' }));
});

runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
  process.env,
  controller.signal,
)
  .catch((e) => {
    process.stderr.write(`error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 3;
  })
  // Exit once stdout is flushed: open sockets or a paused stdin must not keep a finished command alive.
  .then((code) => process.stdout.write('', () => process.exit(code)));
