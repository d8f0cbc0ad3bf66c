// Which requests belong to the tunnel: every configured server.path, and {path}/<name> under each for a named project.

/** A request on the tunnel: the configured path it used (for logs and metrics) and the project its URL names, if any. */
export interface Route {
  readonly tunnelPath: string;
  readonly project: string | undefined;
}

/** server.path as a list: one path, or several (the first is canonical: the URL the tunnel announces and tools default to). */
export function tunnelPaths(configured: string | readonly string[]): readonly string[] {
  return typeof configured === 'string' ? [configured] : configured;
}

/** The path the tunnel announces: the only one, or the first of several. */
export function canonicalPath(configured: string | readonly string[]): string {
  return tunnelPaths(configured)[0] ?? '/tunnel';
}

/** A path exactly equal to a configured one wins over reading it as {other path}/<name>. */
export function createRouter(configured: string | readonly string[]): (path: string) => Route | undefined {
  const bases = new Map<string, Route>();
  const exact = new Map<string, Route>();
  for (const tunnelPath of tunnelPaths(configured)) {
    const route: Route = { tunnelPath, project: undefined };
    bases.set(tunnelPath, route);
    exact.set(tunnelPath, route).set(`${tunnelPath}/`, route);
  }
  return (path) => {
    const base = exact.get(path);
    if (base) return base;
    const slash = path.lastIndexOf('/');
    if (slash <= 0 || slash === path.length - 1) return undefined;
    const parent = bases.get(path.slice(0, slash));
    return parent && { tunnelPath: parent.tunnelPath, project: decodeName(path.slice(slash + 1)) };
  };
}

/** A project name from its URL segment; a segment that is not valid percent-encoding stays as it is. */
export function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
