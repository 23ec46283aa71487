#!/usr/bin/env bash
# Refreshes the vendored LiteGraph build in web/vendor/litegraph/ from npm.
#   scripts/refresh_litegraph.sh            the version pinned below
#   scripts/refresh_litegraph.sh 0.17.3     another version
# Needs npm on the developer's machine only: users get the copied files and run no build step.
set -euo pipefail
cd "$(dirname "$0")/.."
package="@comfyorg/litegraph"
version="${1:-0.17.2}"
dest="web/vendor/litegraph"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package@$version" >/dev/null && tar xzf ./*.tgz)
src="$work/package"

licence=$(node -e 'console.log(require(process.argv[1]).license)' "$src/package.json")
if [ "$licence" != "MIT" ]; then
    echo "refusing to vendor $package@$version: its licence is '$licence', not MIT" >&2
    exit 1
fi

mkdir -p "$dest"
cp "$src/dist/litegraph.es.js" "$dest/litegraph.es.js"
cp "$src/dist/css/litegraph.css" "$dest/litegraph.css"
cp "$src/LICENSE" "$dest/LICENSE"
chmod 644 "$dest"/*
# The build ends with a source-map comment; the map is not vendored, so drop the comment (no 404s in devtools).
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/litegraph.es.js"
printf '%s@%s\n' "$package" "$version" >"$dest/VERSION"
echo "vendored $package@$version ($licence) into $dest; update the version in web/vendor/README.md"
