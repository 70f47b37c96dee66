// The Redis connection of the queue commands: the URL is checked, and an
// unreachable server is reported at once in one line naming the URL, instead
// of the client's endless reconnection attempts.
import { coded } from '../errors';
import type IORedis from 'ioredis';
import type { RedisOptions } from 'ioredis';

/**
 * The Redis client class, loaded on first use: loading it takes a few
 * hundred ms, which the producer spends while its input is being split
 * (see `featurizeOnQueue`) rather than before.
 */
function client(): typeof IORedis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('ioredis') as typeof IORedis & { default?: typeof IORedis };
  return mod.default ?? mod;
}

/** The BullMQ queue every `acdc featurize --queue` and `acdc worker` share (unless --queue-name). */
export const DEFAULT_QUEUE_NAME = 'acdc-featurize';

/**
 * Checks a Redis URL (`redis://HOST:PORT/DB` or `rediss://…`); returns it
 * normalised, or throws an Error naming it.
 */
export function checkRedisUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw coded('ACDC_INVALID_PARAMETER', `--queue ${url} is not a URL: expected redis://HOST:PORT/DB`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw coded('ACDC_INVALID_PARAMETER', `--queue ${url}: expected a redis:// or rediss:// URL, got the scheme "${u.protocol.replace(/:$/, '')}"`);
  if (!u.hostname) throw coded('ACDC_INVALID_PARAMETER', `--queue ${url}: no host (expected redis://HOST:PORT/DB)`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw coded('ACDC_INVALID_PARAMETER', `--queue ${url}: the database must be a number (redis://HOST:PORT/DB), got "${db}"`);
  return url;
}

/** Connection options: a failed connection gives up after a few short retries. */
function options(giveUpAfter: number): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    connectTimeout: 3000,
    retryStrategy: (times: number) => (times > giveUpAfter ? null : Math.min(200 * times, 2000)),
  };
}

/** A URL without its password, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Connects to Redis and checks that it answers (PING), within a few
 * seconds; throws `cannot reach Redis at URL: reason` otherwise.
 */
export async function probeRedis(url: string): Promise<void> {
  const probe = new (client())(url, { ...options(0), lazyConnect: true, enableOfflineQueue: false });
  let lastError: Error | undefined;
  probe.on('error', (e: Error) => {
    lastError = e;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    const reason = (lastError ?? (e as Error)).message || String(e);
    throw coded('ACDC_IO', `cannot reach Redis at ${displayUrl(url)}: ${reason}`);
  } finally {
    probe.disconnect();
  }
}

/**
 * A connection for BullMQ (a Queue, Worker or QueueEvents). After the server
 * has gone away for about 4 s the client stops retrying, and `onLost`
 * is called with an Error naming the URL.
 */
export function connect(url: string, onLost: (e: Error) => void): IORedis {
  // about 4 s of retries (0.2 + 0.4 + … + 1.2 s): a restart of Redis is
  // ridden out, a server gone is reported promptly
  const connection = new (client())(url, options(6));
  let lastError: Error | undefined;
  connection.on('error', (e: Error) => {
    lastError = e;
  });
  connection.on('end', () => onLost(coded('ACDC_IO', `lost the connection to Redis at ${displayUrl(url)}${lastError ? `: ${lastError.message}` : ''}`)));
  return connection;
}
