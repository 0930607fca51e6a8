# kube-network-policies (built from the Go module proxy by hack/kind/tools.sh) on the Debian base:
# the offline node image has no kindnetd, so this agent enforces NetworkPolicy (hack/kind/netpol.yaml).
# It programs nftables and reads NFQUEUE through netlink; it needs no binaries besides its own.
ARG BASE
FROM ${BASE}
COPY netpol /usr/local/bin/netpol
ENTRYPOINT ["/usr/local/bin/netpol"]
