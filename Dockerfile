# modelgate: ONNX inference server. Build: docker build -t modelgate .
# Run:   docker run -p 8080:8080 -p 8081:8081 -v "$PWD/models:/models" modelgate
FROM node:20-slim AS build
WORKDIR /app
# The CPU runtime ships inside onnxruntime-node; its install script would fetch GPU files.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs the `prepare` script, which compiles TypeScript to dist/.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/onnxruntime-node/bin/napi-v6 \
 && rm -rf darwin win32 \
 && find linux -mindepth 1 -maxdepth 1 ! -name "$(node -p process.arch)" -exec rm -rf {} +

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MODELGATE_PORT=8080 \
    MODELGATE_GRPC_PORT=8081
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN ln -s /app/dist/cli.js /usr/local/bin/modelgate \
 && mkdir -p /models \
 && chown node:node /models
USER node
VOLUME /models
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + process.env.MODELGATE_PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["modelgate"]
CMD ["serve", "--models", "/models", "--host", "0.0.0.0"]
