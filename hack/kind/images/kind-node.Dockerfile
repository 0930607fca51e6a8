# The kind node image, assembled by hand from Debian packages and binaries built from source
# (hack/kind/node-image.sh), following kind's images/base/Dockerfile. Differences from upstream:
# Debian's containerd 1.6 and runc 1.1 (behind the runc wrapper), no kindnetd (a static bridge
# CNI config), no local-path provisioner (a no-provisioner StorageClass).
ARG BASE
FROM ${BASE}
COPY kind-files/usr/local/bin/ /usr/local/bin/
COPY kind-files/kind/ /kind/
COPY kind-files/etc/ /etc/
COPY runc-wrapper /usr/local/sbin/runc
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY bin/crictl /usr/local/bin/crictl
COPY 10-cj-bridge.conflist /etc/cni/net.d/10-cj-bridge.conflist
COPY default-storage.yaml /kind/manifests/default-storage.yaml
COPY version /kind/version
RUN chmod 0755 /usr/local/bin/* /usr/local/sbin/runc /kind/bin/* \
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests && cp /usr/lib/cni/* /opt/cni/bin/ \
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
          /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
          /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && sed -i "s#sandbox_image = .*#sandbox_image = \"$(cat /kind/sandbox-image)\"#" /etc/containerd/config.toml \
 && ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
