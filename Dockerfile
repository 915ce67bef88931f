# One image for every Sheepfold process: `sheep`, `target` and `dog`.
# Build:  docker build -t sheepfold .
# A 3-node cluster plus a target on one Docker host (host networking keeps the sheep addresses simple):
#   docker run -d --name sheep0 --network host -v sf0:/data sheepfold sheep --store /data --port 7000 --zone 0 --cluster local:/data/cluster
#   (for several hosts use a multi-host cluster driver; see README "Limits")
#   docker run --rm --network host sheepfold dog cluster format -c 3
#   docker run --rm --network host sheepfold dog vdi create demo 10G
#   docker run -d --name target --network host sheepfold target --sheep 127.0.0.1:7000 --export demo=demo --nbd 127.0.0.1:10809

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/setup/postbuild.mjs scripts/setup/postbuild.mjs
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /app/dist/cli/dog.js /usr/local/bin/dog \
 && ln -s /app/dist/cli/sheepfold.js /usr/local/bin/sheepfold \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 7000 10809 3260
ENTRYPOINT ["node", "/app/dist/cli/sheepfold.js"]
CMD ["--help"]
