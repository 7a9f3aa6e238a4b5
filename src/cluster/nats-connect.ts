/**
 * Connecting to NATS: credentials from the URL or options (masked in every
 * message), TLS files, a fail-fast probe, clear errors for refused
 * credentials and unreachable hosts.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { hostname } from 'node:os';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { OdenessError } from '../errors.js';

export const CONNECT_TIMEOUT_MS = 5_000;

export interface NatsConnectOptions {
  /** nats://host:4222 (tls://… for TLS); user:password@ or token@ in the URL is accepted and masked. */
  url: string;
  user?: string;
  password?: string;
  token?: string;
  /** Files holding the password or token (one line; surrounding whitespace ignored): kept out of `ps`. */
  passwordFile?: string;
  tokenFile?: string;
  /** A NATS credentials file (user JWT + nkey seed, as `nsc` writes it). */
  creds?: string;
  /** PEM files. Giving any of them requires TLS. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Client name shown by the server's monitoring (never holds credentials). */
  name?: string;
  /** Handshake timeout of the first connection (default 5 s). */
  timeoutMs?: number;
}

/**
 * The URL with any user, password or token replaced by `***`: everything
 * between `://` (or the start) and the last `@` of each server, so a token
 * holding `/`, `:` or `@` is masked whole.
 */
export function maskUrl(url: string): string {
  return url
    .split(',')
    .map((u) => {
      const at = u.lastIndexOf('@');
      if (at < 0) return u;
      const scheme = /^\s*[a-z][a-z0-9+.-]*:\/\//i.exec(u)?.[0] ?? '';
      return `${scheme}***${u.slice(at)}`;
    })
    .join(',');
}

/** A one-line description for logs: masked URL and the auth mode, never the secrets. */
export function describeNats(opts: NatsConnectOptions): string {
  const auth =
    opts.creds !== undefined
      ? 'credentials file'
      : opts.token !== undefined || opts.tokenFile !== undefined
        ? 'token auth'
        : opts.user !== undefined
          ? `user ${opts.user}`
          : /@/.test(opts.url)
            ? 'credentials in URL'
            : 'no auth';
  const tls = opts.tlsCa || opts.tlsCert || opts.tlsKey || /^tls:/i.test(opts.url) ? ', TLS' : '';
  return `${maskUrl(opts.url)} (${auth}${tls})`;
}

/** scheme, user info (up to the last @), host part. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?(.*)@([^@]*)$/i;

function readSecretFile(flag: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new OdenessError(
      `${flag} ${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const secret = text.trim();
  if (secret === '') throw new OdenessError(`${flag} ${file}: the file is empty`);
  return secret;
}

function usesTls(opts: NatsConnectOptions): boolean {
  return !!(opts.tlsCa || opts.tlsCert || opts.tlsKey) || opts.url.split(',').every((u) => /^\s*tls:\/\//i.test(u));
}

/** A warning when credentials would cross the network in plain text (nats:// without TLS), else undefined. */
export function plainTextCredentialsWarning(opts: NatsConnectOptions): string | undefined {
  const hasSecret =
    opts.password !== undefined ||
    opts.token !== undefined ||
    opts.passwordFile !== undefined ||
    opts.tokenFile !== undefined ||
    opts.url.includes('@');
  if (!hasSecret || usesTls(opts)) return undefined;
  return (
    `credentials for ${maskUrl(opts.url)} go over plain nats:// (not encrypted): ` +
    'use tls:// with --tls-ca, or --creds (nkey signatures, no password on the wire)'
  );
}

/** What the URL and options say about who connects: explicit options win over the URL's. */
interface Credentials {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** The user info of each server in the URL, as written (masked in error messages). */
  rawInfo: string[];
}

/** Split credentials out of the URL (a comma-separated list of servers is accepted). */
function credentialsOf(opts: NatsConnectOptions): Credentials {
  const fromFile = (flag: string, file: string | undefined) =>
    file !== undefined ? readSecretFile(flag, file) : undefined;
  const c: Credentials = {
    servers: [],
    user: opts.user,
    pass: opts.password ?? fromFile('--password-file', opts.passwordFile),
    token: opts.token ?? fromFile('--token-file', opts.tokenFile),
    rawInfo: [],
  };
  for (const server of opts.url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)) {
    const m = USERINFO.exec(server);
    if (!m) {
      c.servers.push(server);
      continue;
    }
    const [, scheme = '', info = '', rest = ''] = m;
    c.rawInfo.push(info);
    const colon = info.indexOf(':');
    if (colon >= 0) {
      c.user ??= decodeURIComponent(info.slice(0, colon));
      c.pass ??= decodeURIComponent(info.slice(colon + 1));
    } else if (info !== '') c.token ??= decodeURIComponent(info);
    c.servers.push(scheme + rest);
  }
  if (c.servers.length === 0) throw new OdenessError('--nats: the NATS URL is empty');
  if (c.token !== undefined && (c.user !== undefined || c.pass !== undefined))
    throw new OdenessError('give a NATS token or a user and password, not both');
  if ((c.user === undefined) !== (c.pass === undefined))
    throw new OdenessError('give both a NATS user and a password (--user and --password)');
  if (c.pass === '' || c.token === '') {
    throw new OdenessError(`the NATS ${c.pass === '' ? 'password' : 'token'} is empty: an empty secret is refused`);
  }
  return c;
}

/** The bytes of --creds (user JWT and nkey seed), checked for shape; refused beside a user or token. */
function credsFileBytes(opts: NatsConnectOptions, c: Credentials): Uint8Array | undefined {
  if (opts.creds === undefined) return undefined;
  if (c.token !== undefined || c.user !== undefined)
    throw new OdenessError('give a NATS credentials file (--creds) or a user/password or token, not both');
  const text = readSecretFile('--creds', opts.creds);
  if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
    throw new OdenessError(
      `--creds ${opts.creds}: not a NATS credentials file ` +
        '(expected a user JWT and an nkey seed, as nsc writes them)',
    );
  }
  return new TextEncoder().encode(text);
}

/** A TLS file that must be readable now (the client reads it later, with a less clear error). */
function tlsFile(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    readFileSync(path);
  } catch (e) {
    throw new OdenessError(
      `${flag} ${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return path;
}

/** The client's TLS options, or undefined when no server or file asks for TLS. */
function tlsOptions(opts: NatsConnectOptions, servers: string[]): NodeConnectionOptions['tls'] | undefined {
  const caFile = tlsFile('--tls-ca', opts.tlsCa);
  const certFile = tlsFile('--tls-cert', opts.tlsCert);
  const keyFile = tlsFile('--tls-key', opts.tlsKey);
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new OdenessError('give both --tls-cert and --tls-key for a client certificate');
  const useTls = caFile !== undefined || certFile !== undefined || servers.some((u) => /^tls:\/\//i.test(u));
  if (!useTls) return undefined;
  return { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) };
}

/**
 * Split credentials out of the URL (a comma-separated list of servers is
 * accepted); explicit options win over the URL's.
 */
function resolveConnectOptions(opts: NatsConnectOptions): {
  servers: string[];
  options: NodeConnectionOptions;
  secrets: string[];
} {
  const c = credentialsOf(opts);
  const { servers, user, pass, token } = c;
  const creds = credsFileBytes(opts, c);
  const tls = tlsOptions(opts, servers);
  const options: NodeConnectionOptions = {
    servers,
    name: opts.name ?? `odeness ${hostname()}/${process.pid}`,
    timeout: opts.timeoutMs ?? CONNECT_TIMEOUT_MS,
    // After the first connection, ride out server restarts for as long as it takes.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: false,
    // No stack captured per request (two Error objects each): a tenth of a tiny job's coordinator CPU. Request
    // errors keep their messages; only the caller's async stack is lost.
    noAsyncTraces: true,
    ...(user !== undefined ? { user, pass: pass! } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(creds !== undefined ? { authenticator: credsAuthenticator(creds) } : {}),
    ...(tls ? { tls } : {}),
  };
  return {
    servers,
    options,
    secrets: [...c.rawInfo, pass, token].filter((x): x is string => !!x).sort((a, b) => b.length - a.length),
  };
}

function isAuthError(e: unknown): boolean {
  const err = e as (Error & { code?: unknown }) | undefined;
  const text = `${err?.name ?? ''} ${err?.message ?? ''} ${String(err?.code ?? '')}`.toLowerCase();
  return text.includes('authorization') || text.includes('authentication') || text.includes('auth_');
}

class NoAnswer extends Error {}

/**
 * Open a plain TCP connection and wait for the server's first bytes (its INFO
 * line). The NATS client leaves its socket open when its own handshake times
 * out, which keeps the process alive; this probe fails first and cleans up.
 */
function probe(server: string, timeoutMs: number): Promise<void> {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `nats://${server}`);
  } catch {
    return Promise.reject(new OdenessError(`not a NATS URL: ${maskUrl(server)}`));
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(u.port || 4222);
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    const done = (e?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => done(new NoAnswer()), timeoutMs);
    sock.once('data', () => done());
    sock.once('error', (e) => done(e));
    sock.once('close', () => done(new Error('the server closed the connection')));
  });
}

/** Connect, or fail within about `timeoutMs` with a message naming the (masked) URL and the cause. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const { servers, options, secrets } = resolveConnectOptions(opts);
  const where = describeNats(opts);
  const timeout = options.timeout ?? CONNECT_TIMEOUT_MS;
  const scrub = (text: string) => secrets.reduce((t, x) => t.replaceAll(x, '***'), text);
  const fail = (e: unknown): never => {
    if (e instanceof OdenessError) throw e;
    const err = e as Error & { code?: string; cause?: unknown };
    if (isAuthError(err)) {
      throw new OdenessError(
        `NATS server at ${where} refused the credentials (authorization violation): check --user/--password or --token`,
      );
    }
    const cause = err.cause as (Error & { code?: string }) | undefined;
    const code = cause?.code ?? err.code;
    const reason =
      code === 'ECONNREFUSED'
        ? 'connection refused (is nats-server running there, started with -js?)'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'host not found'
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
            ? 'host unreachable'
            : err instanceof NoAnswer || /timeout/i.test(`${err.name} ${err.message}`)
              ? `no answer within ${timeout / 1000} s`
              : scrub(cause?.message ?? err.message);
    const hint =
      /certificate|self[- ]signed|tls|ssl/i.test(reason) && !opts.tlsCa
        ? " (TLS: give the server's CA with --tls-ca)"
        : '';
    throw new OdenessError(`cannot connect to NATS at ${where}: ${reason}${hint}`);
  };
  // Any one server answering is enough.
  const probes = await Promise.allSettled(servers.map((s) => probe(s, timeout)));
  if (probes.every((p) => p.status === 'rejected')) fail((probes[0] as PromiseRejectedResult).reason);
  try {
    return await connect(options);
  } catch (e) {
    return fail(e);
  }
}
