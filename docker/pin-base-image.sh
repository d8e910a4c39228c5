#!/usr/bin/env bash
# Pin the Dockerfile's base image by digest: the digest Docker Hub serves today for python:3.11-slim
# (a multi-platform index; Docker picks each platform's image from it). Needs Docker Hub; run from
# anywhere, then commit the Dockerfile:
#     bash docker/pin-base-image.sh
# The same digest with Docker: docker buildx imagetools inspect python:3.11-slim   (its "Digest:" line)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-3.11-slim}
token=$(curl -fsS "https://auth.docker.io/token?service=registry.docker.io&scope=repository:library/python:pull" |
        sed -E 's/.*"token":"([^"]+)".*/\1/')
digest=$(curl -fsSI -H "Authorization: Bearer $token" \
             -H "Accept: application/vnd.oci.image.index.v1+json" \
             -H "Accept: application/vnd.docker.distribution.manifest.list.v2+json" \
             "https://registry-1.docker.io/v2/library/python/manifests/$TAG" |
         tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "Docker Hub gave no digest for python:$TAG" >&2; exit 1; }
sed -i -E "s|^FROM python:[^ ]+|FROM python:$TAG@$digest|" Dockerfile
echo "Dockerfile: FROM python:$TAG@$digest"
