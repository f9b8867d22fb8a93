#!/usr/bin/env node
// The `sharedllm` command. SharedLLM ships TypeScript sources; tsx runs them without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// Exit explicitly: native backends may keep threads alive after the work is done.
process.exit(code);
