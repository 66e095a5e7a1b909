# qkv serve in a container: the embedded qkv-tiny model, or a checkpoint mounted at /model (--model /model).
#   docker build -t qkv .
#   docker run --rm -p 8080:8080 qkv                       # the lab and the API on http://localhost:8080
#   docker run --rm -p 8080:8080 -v $PWD/ckpt:/model:ro qkv serve --host 0.0.0.0 --model /model --allowed-host qkv.example
# Small: the build stage compiles (TypeScript, AssemblyScript); the runtime stage has Node, dist/ and the production
# dependencies only, and runs as the unprivileged `node` user.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/dist/lab ./dist/lab
COPY --from=build /src/models/qkv-tiny ./models/qkv-tiny
COPY --from=build /src/lab ./lab
COPY --from=build /src/src ./src
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "dist/src/node/cli/main.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
