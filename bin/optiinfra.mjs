#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (no build step). Every path is resolved from this file,
// never from the working directory, so the command works from any folder, installed or not;
// tsx compiles with the package's own tsconfig.json, not one it might find in that folder.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
const { main } = await import(new URL('../client/cli/index.ts', import.meta.url).href);
process.exit(await main());
