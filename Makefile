# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each installs what it needs: npm packages when package-lock.json changed, and (as root, with
# apt-get) the Debian tools the interop tests use.
.PHONY: demo test bench sysdeps

STAMP := node_modules/.imsec-stamp

$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $(STAMP)

sysdeps:
	@bash scripts/install-sysdeps.sh

demo: $(STAMP)
	node bin/imsec.mjs demo

test: $(STAMP) sysdeps
	npm test

bench: $(STAMP)
	npm run bench
