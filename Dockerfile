FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY scripts ./scripts
COPY gen ./gen
COPY src ./src
COPY workflows ./workflows
RUN mkdir -p /app/.data && chown node:node /app/.data
EXPOSE 3000
USER node
CMD ["sh", "scripts/start.sh"]
