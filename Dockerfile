# The sentry-tunnel daemon as a container image, for `docker build .` or `podman build .` (README: "Run it in a container").
#
# NODE_IMAGE is a build argument so that CI, which reaches no image registry, can build on a stand-in made
# from Debian and the npm registry (scripts/ci/deploy-tools.sh); any image with node and npm in
# /usr/local/bin works.
ARG NODE_IMAGE=node:24-slim

# Builds dist/ (tsc and the bundled CLI) with every dependency. Install scripts stay off: `prepare` would
# build before the sources are here, and the build needs none (esbuild's only checks its binary).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.js scripts/
COPY src src
RUN npm run build

# Only the production dependencies, for the runtime image. --omit=optional leaves out typescript (23 MB),
# an optional peer of cosmiconfig for .ts configuration files, which the tunnel does not look for.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --no-update-notifier

FROM ${NODE_IMAGE}
# Everything but the spool belongs to root, so the tunnel (uid 1000, `node` in the official image) cannot
# change its own code or configuration. The default configuration turns the spool on and logs JSON;
# a file mounted at /etc/sentry-tunnel/config.json replaces it.
RUN mkdir -p /etc/sentry-tunnel /var/lib/sentry-tunnel/spool \
 && printf '%s\n' '{' \
      '  "spool": { "dir": "/var/lib/sentry-tunnel/spool" },' \
      '  "log": { "format": "json" }' \
      '}' >/etc/sentry-tunnel/config.json \
 && chown -R 1000:1000 /var/lib/sentry-tunnel
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json sentry-tunnel.schema.json ./
COPY bin bin
# The environment wins over the configuration file: inside a container the tunnel listens on every
# interface, on 8080, unless `-e SENTRY_TUNNEL_PORT=…` says otherwise.
ENV NODE_ENV=production \
    SENTRY_TUNNEL_HOST=0.0.0.0 \
    SENTRY_TUNNEL_PORT=8080
USER 1000:1000
EXPOSE 8080
# node is PID 1 and handles SIGTERM itself (serve: drain, then exit 0); the tunnel starts no child
# processes, so there are no zombies to reap and no init is needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/sentry-tunnel.js"]
CMD ["serve", "--config", "/etc/sentry-tunnel/config.json"]
