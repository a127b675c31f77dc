#!/usr/bin/env node
import { runCli } from './cli.js';

runCli().then((code) => {
  process.exitCode = code;
  // Keep-alive sockets or timers left by a library must not keep a stopped gateway alive.
  setTimeout(() => process.exit(code), 1000).unref();
});
