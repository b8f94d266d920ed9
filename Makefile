# agentd — build, test, demo and benchmark entry points.
#
#   make deps    libseccomp-dev + pkg-config (apt), checks for cargo
#   make build   debug binaries (what the e2e tests drive)
#   make test    build, then every test; needs root. AGENTD_TEST_EXPECT=userns,landlock,…
#                turns a missing kernel feature into a failure instead of a SKIP (.ci/run sets it)
#   make demo    a confined shell next to a fake home with an SSH key (root; runs as `nobody`)
#   make bench   agentctl run latency against bwrap and bare exec (root)
#   make lint    what CI checks before the tests
#   make install    (root) release binaries, systemd units, tmpfiles/sysusers entries, config,
#                   presets, man pages and completions under PREFIX (default /usr/local); run
#                   `make release` first as yourself. DESTDIR= stages instead of installing.
#   make uninstall  (root) removes what install put there; keeps /etc/agentd and /var/lib/agentd
#   make deb        target/agentd_VERSION_ARCH.deb (dpkg-deb from a staged tree; no cargo-deb needed).
#                   With cargo-deb installed, `make release generate && cargo deb -p agentd --no-build`
#                   packs the same files ([package.metadata.deb] in agentd/Cargo.toml).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
AGENTD_TEST_EXPECT ?=

.PHONY: all deps build release test demo bench lint clean generate install uninstall deb

TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
RELEASE_DIR ?= $(TARGET_DIR)/release
GEN_DIR ?= $(TARGET_DIR)/release/generated
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# Binaries are stripped on install (STRIP= keeps their line tables for backtraces).
STRIP ?= -s
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/agentd
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSCONFDIR ?= /etc
# Units of a hand install go where the admin's units go; the .deb puts them under /lib.
UNITDIR ?= $(SYSCONFDIR)/systemd/system
TMPFILESDIR ?= $(SYSCONFDIR)/tmpfiles.d
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d

all: build

deps:
	@command -v $(CARGO) >/dev/null || { \
	  echo "cargo not found. Install Rust (>= 1.85) with rustup:"; \
	  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"; \
	  echo "then run: . \"\$$HOME/.cargo/env\""; exit 1; }
	@if ! pkg-config --exists libseccomp 2>/dev/null; then \
	  echo "installing libseccomp-dev pkg-config"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq libseccomp-dev pkg-config >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq libseccomp-dev pkg-config; }; \
	fi
	@if ! /usr/bin/python3 -m pytest --version >/dev/null 2>&1; then \
	  echo "installing python3-pytest (the preset tests run a pytest suite)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq python3-pytest >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq python3-pytest; }; \
	fi

build: deps
	$(CARGO) build --workspace --bins

release: deps
	$(CARGO) build --workspace --bins --release

test: build
	AGENTD_TEST_EXPECT=$(AGENTD_TEST_EXPECT) $(CARGO) test --workspace

demo: build
	bash tests/demo.sh

bench: deps
	bash bench/run-latency.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean

# Man pages and completions, generated from the CLI definitions by the built binaries.
generate:
	@test -x $(RELEASE_DIR)/agentd -a -x $(RELEASE_DIR)/agentctl || \
	  { echo "no release binaries in $(RELEASE_DIR): run \`make release\` first (as yourself)"; exit 1; }
	rm -rf $(GEN_DIR)
	$(RELEASE_DIR)/agentctl __generate $(GEN_DIR)
	$(RELEASE_DIR)/agentd __generate-man $(GEN_DIR)/man

install: generate
	install -Dm755 $(STRIP) $(RELEASE_DIR)/agentd $(DESTDIR)$(SBINDIR)/agentd
	install -Dm755 $(STRIP) $(RELEASE_DIR)/agentctl $(DESTDIR)$(BINDIR)/agentctl
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/sbin/agentd|ExecStart=$(SBINDIR)/agentd|' packaging/agentd.service \
	  > $(DESTDIR)$(UNITDIR)/agentd.service
	install -m644 packaging/agentd.socket $(DESTDIR)$(UNITDIR)/agentd.socket
	install -Dm644 packaging/agentd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/agentd.conf
	install -Dm644 packaging/agentd.sysusers $(DESTDIR)$(SYSUSERSDIR)/agentd.conf
	@# Config and presets: never overwrite what the admin may have edited.
	install -d $(DESTDIR)$(SYSCONFDIR)/agentd/policies
	test -e $(DESTDIR)$(SYSCONFDIR)/agentd/agentd.toml || \
	  install -m644 packaging/agentd.toml $(DESTDIR)$(SYSCONFDIR)/agentd/agentd.toml
	for p in policies/*.toml; do \
	  test -e $(DESTDIR)$(SYSCONFDIR)/agentd/$$p || install -m644 $$p $(DESTDIR)$(SYSCONFDIR)/agentd/$$p; \
	done
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	for m in $(GEN_DIR)/man/*.1; do gzip -9nc $$m > $(DESTDIR)$(MANDIR)/man1/$$(basename $$m).gz; done
	gzip -9nc $(GEN_DIR)/man/agentd.8 > $(DESTDIR)$(MANDIR)/man8/agentd.8.gz
	install -Dm644 $(GEN_DIR)/completions/agentctl.bash $(DESTDIR)$(BASHCOMPDIR)/agentctl
	install -Dm644 $(GEN_DIR)/completions/_agentctl $(DESTDIR)$(ZSHCOMPDIR)/_agentctl
	install -Dm644 $(GEN_DIR)/completions/agentctl.fish $(DESTDIR)$(FISHCOMPDIR)/agentctl.fish
	install -d $(DESTDIR)$(DOCDIR)
	install -m644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	  systemd-sysusers $(SYSUSERSDIR)/agentd.conf; \
	  systemd-tmpfiles --create $(TMPFILESDIR)/agentd.conf; \
	  systemctl daemon-reload; \
	  echo "installed; start it with: systemctl enable --now agentd.socket agentd.service"; \
	fi

uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	  systemctl disable --now agentd.service agentd.socket 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(SBINDIR)/agentd $(DESTDIR)$(BINDIR)/agentctl
	rm -f $(DESTDIR)$(UNITDIR)/agentd.service $(DESTDIR)$(UNITDIR)/agentd.socket
	rm -f $(DESTDIR)$(TMPFILESDIR)/agentd.conf $(DESTDIR)$(SYSUSERSDIR)/agentd.conf
	rm -f $(DESTDIR)$(MANDIR)/man1/agentctl.1.gz $(DESTDIR)$(MANDIR)/man1/agentctl-*.1.gz
	rm -f $(DESTDIR)$(MANDIR)/man8/agentd.8.gz
	rm -f $(DESTDIR)$(BASHCOMPDIR)/agentctl $(DESTDIR)$(ZSHCOMPDIR)/_agentctl $(DESTDIR)$(FISHCOMPDIR)/agentctl.fish
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept: $(SYSCONFDIR)/agentd (config, presets), /var/lib/agentd (run state, audit logs)," \
	  "the agentd-admin group; remove them by hand if you want them gone"

# The .deb, staged with `make install` into a temporary root and packed by dpkg-deb (the same
# file list as [package.metadata.deb] in agentd/Cargo.toml, for those who use cargo-deb).
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_STAGE = $(TARGET_DIR)/deb-stage
DEB = $(TARGET_DIR)/agentd_$(VERSION)_$(DEB_ARCH).deb
deb: generate
	rm -rf $(DEB_STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_STAGE)) PREFIX=/usr \
	  UNITDIR=/lib/systemd/system TMPFILESDIR=/usr/lib/tmpfiles.d SYSUSERSDIR=/usr/lib/sysusers.d \
	  ZSHCOMPDIR=/usr/share/zsh/vendor-completions
	install -d $(DEB_STAGE)/DEBIAN
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	  -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_STAGE) | cut -f1)/" \
	  packaging/debian/control > $(DEB_STAGE)/DEBIAN/control
	(cd $(DEB_STAGE) && find etc -type f | sed 's|^|/|' | sort) > $(DEB_STAGE)/DEBIAN/conffiles
	install -m755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_STAGE)/DEBIAN/
	dpkg-deb --root-owner-group --build $(DEB_STAGE) $(DEB)
	@echo "built $(DEB)"
