#!/usr/bin/env bash
# Refreshes static/vendor/ from the npm packages pinned in package.json.
# The copied files are committed, so running the app never needs Node or a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
cp package.json "$tmp/"
(cd "$tmp" && npm install --silent --no-audit --no-fund)
nm="$tmp/node_modules"
mkdir -p static/vendor/bootstrap static/vendor/htmx static/vendor/chartjs
cp "$nm/bootstrap/dist/css/bootstrap.min.css" "$nm/bootstrap/dist/js/bootstrap.bundle.min.js" "$nm/bootstrap/LICENSE" static/vendor/bootstrap/
# Right-to-left languages (Arabic) get Bootstrap's mirrored build instead (templates/base.html).
cp "$nm/bootstrap/dist/css/bootstrap.rtl.min.css" static/vendor/bootstrap/
cp "$nm/htmx.org/dist/htmx.min.js" "$nm/htmx.org/LICENSE" static/vendor/htmx/
cp "$nm/chart.js/dist/chart.umd.js" "$nm/chart.js/LICENSE.md" static/vendor/chartjs/
# The time axis of the Course info chart needs a date adapter; the bundle carries date-fns inside.
cp "$nm/chartjs-adapter-date-fns/dist/chartjs-adapter-date-fns.bundle.min.js" static/vendor/chartjs/
cp "$nm/chartjs-adapter-date-fns/LICENSE.md" static/vendor/chartjs/LICENSE-chartjs-adapter-date-fns.md
# Only the browser tests load axe-core (they inject it into each page to check accessibility);
# no template references it.
mkdir -p static/vendor/axe
cp "$nm/axe-core/axe.min.js" "$nm/axe-core/LICENSE" static/vendor/axe/
# The source maps are not shipped: drop their comments, or collectstatic's
# manifest storage (DEBUG=0, the Docker build) fails on the missing .map files.
sed -i -E '\@^(//|/\*)# sourceMappingURL=@d' static/vendor/bootstrap/bootstrap.min.css static/vendor/bootstrap/bootstrap.rtl.min.css \
  static/vendor/bootstrap/bootstrap.bundle.min.js static/vendor/chartjs/chart.umd.js
rm -rf "$tmp"
echo "static/vendor refreshed"
