// The path of a request target, without its query; which paths the tunnel takes is routes.ts.

/** The path of a request target ("/tunnel?x=1" → "/tunnel"). */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
