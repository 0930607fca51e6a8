# One image holds every Kubernetes component binary the node runs in containers; node-image.sh
# tags it with each name kubeadm expects (the static pods and kube-proxy name their command, so
# one image serves all) plus two thin images for CoreDNS and pause, which run their entrypoint.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      iptables nftables conntrack ipset kmod \
 && rm -rf /var/lib/apt/lists/*
COPY bin/ /usr/local/bin/
RUN ln -s /usr/local/bin/coredns /coredns && ln -s /usr/local/bin/pause /pause
