# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each installs what it needs: npm packages when package-lock.json changed (`npm ci` also runs the
# `prepare` build), dist/ when a source changed (scripts/build.mjs does nothing when dist/ is
# fresh), and (as root, with apt-get) the Debian tools the interop tests use.
.PHONY: demo test bench bench-startup build sysdeps

STAMP := node_modules/.imsec-stamp

$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $(STAMP)

build: $(STAMP)
	@node scripts/build.mjs

sysdeps:
	@bash scripts/install-sysdeps.sh

demo: build
	node bin/imsec.mjs demo

test: build sysdeps
	npm test

bench: $(STAMP)
	npm run bench

bench-startup: build
	npm run bench:startup
