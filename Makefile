# Growbin: `make up` brings the local platform up, `make test` runs every test.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(CURDIR)/.cache/bin:$(PATH)
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
export MOLECULE_GLOB ?= molecule/*/molecule.yml

.PHONY: bootstrap up down test lint unit molecule collection bench inventory image contract api-reference clean

bootstrap: ## venv, Docker engine, node image, helm (cached)
	@bash scripts/bootstrap.sh

up: bootstrap ## the 13 nodes + edge as containers, converged by site.yml (Molecule's default scenario)
	molecule converge -s default
	@echo "Growbin is up: https://localhost:8443 (trust $(CURDIR)/.local/ca/growbin-local-ca.crt)"

down: bootstrap ## remove the local node containers, their volumes and network
	molecule destroy -s default

test: bootstrap ## every test: lint, syntax, unit/integration, collection build, Molecule
	@bash scripts/test.sh all

lint: bootstrap
	@bash scripts/test.sh lint

unit: bootstrap
	@bash scripts/test.sh pytest

collection: bootstrap
	@bash scripts/test.sh collection

molecule: bootstrap
	@bash scripts/test.sh molecule

bench: bootstrap ## benchmarks (ratios against a baseline in the same run)
	@bash bench/run.sh

image: bootstrap ## the application image from the platform's wheels and the offline model
	@ref=$$(bash scripts/build-image.sh) && echo "built $$ref" && \
	echo "push: docker tag $$ref <ECR URL>:<version> && docker push <ECR URL>:<version>;" && \
	echo "then set growbin_app_image_digest to the pushed digest (docker inspect --format '{{index .RepoDigests 0}}' <ECR URL>:<version>)"

contract: bootstrap ## rewrite roles/app_settings/vars/contract.yml from the application's deploy contract
	@python scripts/write-contract.py

api-reference: bootstrap ## rewrite docs/api/openapi.json from the application's routes
	@mkdir -p docs/api && python -m growbin.cli openapi > docs/api/openapi.json && echo "wrote docs/api/openapi.json"

inventory: ## write inventories/production/hosts.yml from Terraform's outputs
	terraform -chdir=terraform output -json | python scripts/terraform_inventory.py > inventories/production/hosts.yml

clean: down
	rm -rf .cache build dist growbin-platform-*.tar.gz
