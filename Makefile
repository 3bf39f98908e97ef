# The two commands of README.md. Both install what is missing first.
.PHONY: setup demo test lint

PYTEST_ARGS ?=

setup:
	./scripts/setup.sh

demo: setup
	./scripts/demo.sh

test: setup
	./scripts/test.sh $(PYTEST_ARGS)

lint:
	ruff check .
