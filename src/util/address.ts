// HOST:PORT parsing for command-line flags (`127.0.0.1:9100`, `[::1]:9100`), with a clear error.

/** Parse HOST:PORT; throws an Error naming the flag when the text is not one. */
export function parseHostPort(text: string, flag = 'address'): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(i + 1));
  if (i <= 0 || host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad ${flag} '${text}': expected HOST:PORT`);
  }
  return { host, port };
}
