# Built in two stages: the first compiles the TypeScript to JavaScript, bundles the workflow code ahead
# of time and builds the operator console (`npm run build`), then drops the development packages; the image runs the build with
# node alone (NODE_ENV=production: no TypeScript compiler at run time).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
COPY workflows ./workflows
COPY console ./console
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY scripts ./scripts
RUN mkdir -p /app/.data && chown node:node /app/.data
EXPOSE 3000
USER node
CMD ["sh", "scripts/start.sh"]
