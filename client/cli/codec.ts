/**
 * `optiinfra codec-server`: decrypts payloads for the Temporal Web UI until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { codecFor } from '../../workers/codec.js';
import { startCodecServer } from '../codec-server.js';
import { runtimeConfig } from '../runtime.js';
import { intArg, UsageError } from './args.js';

export function registerCodecServerCommand(program: Command): void {
  program
    .command('codec-server')
    .description(
      'decrypt payloads for the Temporal Web UI (start the UI with --ui-codec-endpoint http://127.0.0.1:8888) until SIGINT/SIGTERM',
    )
    .option('--port <port>', 'port to listen on', intArg('port', 1, 65535), 8888)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (o: { port: number; host: string }) => {
      const config = runtimeConfig();
      const codec = codecFor(config);
      if (!codec) throw new UsageError('payload encryption is off: set OPTIINFRA_ENCRYPTION_KEYS (keyId:base64key[,...]) first');
      const loopback = ['127.0.0.1', 'localhost', '::1'].includes(o.host);
      if (!config.codec.token && !loopback) {
        throw new UsageError(`set OPTIINFRA_CODEC_TOKEN before listening on ${o.host}: without it anyone who reaches the port can decrypt`);
      }
      const server = await startCodecServer({
        port: o.port,
        host: o.host,
        codec,
        token: config.codec.token,
        corsOrigin: config.codec.corsOrigin,
      });
      console.log(
        `codec server on ${server.url} (POST /encode, /decode; encrypting with key '${codec.keyId}'; CORS for ${config.codec.corsOrigin}; ` +
          `${config.codec.token ? 'bearer token required' : 'no token: OPTIINFRA_CODEC_TOKEN is unset'})`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });
}
