// Which requests belong to the tunnel: server.path itself, and server.path/<name> for a named project.
/** The tunnel's answer for `path`: undefined when the path is not the tunnel's; `project` when it names one. */
export type TunnelPathMatch = { readonly project: string | undefined } | undefined;

const BASE: TunnelPathMatch = { project: undefined };

export function createTunnelPathMatcher(tunnelPath: string): (path: string) => TunnelPathMatch {
  const namedPrefix = `${tunnelPath}/`;
  return (path) => {
    if (path === tunnelPath || path === namedPrefix) return BASE;
    if (path.startsWith(namedPrefix) && !path.includes('/', namedPrefix.length)) return { project: decodeName(path.slice(namedPrefix.length)) };
    return undefined;
  };
}

/** The path of a request target ("/tunnel?x=1" → "/tunnel"). */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
