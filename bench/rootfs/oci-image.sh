# Sourced by prove-runtime.sh: oci_image ROOTFS STAGE makes the image the Containerfile describes from the
# proven root file system plus the builder stage's files, with buildah (storage under the rootfs cache, vfs
# driver: no overlay or fuse needed), and reports its size unpacked and as pulled (gzip layers).
oci_image() {
  local rootfs="$1" stage="$2"
  local buildah=(buildah --root "$cache/buildah/storage" --runroot "$cache/buildah/run" --storage-driver vfs)
  local tag=avmae-serve:latest archive="$cache/avmae-serve.oci.tar"
  local containerfile="$container/Containerfile"

  # The image's configuration, from the Containerfile's own lines.
  local config=(--port "$(sed -n 's/^EXPOSE //p' "$containerfile")" --user "$(sed -n 's/^USER //p' "$containerfile")"
                --entrypoint "$(sed -n 's/^ENTRYPOINT //p' "$containerfile")" --cmd "$(sed -n 's/^CMD //p' "$containerfile")")
  local line
  while read -r line; do config+=(--env "$line"); done < <(sed -n 's/^ENV //p' "$containerfile")
  local healthcheck="$(sed -n 's/^HEALTHCHECK //p' "$containerfile")"
  config+=(--healthcheck "CMD ${healthcheck#*CMD }")
  local option
  for option in ${healthcheck%%CMD *}; do
    option="${option#--}"
    config+=("--healthcheck-${option%%=*}" "${option#*=}")
  done

  "${buildah[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
  local container_id mount
  container_id="$("${buildah[@]}" from scratch)"
  mount="$("${buildah[@]}" mount "$container_id")"
  cp -a "$rootfs/." "$mount/"
  rm -f "$mount/.complete"
  cp -a "$stage/." "$mount/"
  "${buildah[@]}" umount "$container_id" >/dev/null
  "${buildah[@]}" config "${config[@]}" "$container_id"
  "${buildah[@]}" commit --quiet --format docker --rm "$container_id" "$tag" >/dev/null
  rm -f "$archive"
  "${buildah[@]}" push --quiet "$tag" "oci-archive:$archive:$tag"
  echo "$tag: $("${buildah[@]}" images --format '{{.Size}}' "$tag") unpacked, $(du -m "$archive" | cut -f1) MB as an OCI archive (gzip); healthcheck $("${buildah[@]}" inspect --format '{{.Docker.Config.Healthcheck.Test}}' "$tag")"
}
