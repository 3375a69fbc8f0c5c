#!/usr/bin/env bash
# Compiles the mutated sandbox; tsc emits even where a mutant breaks a type (mutants are not
# type-checked), and a test file that does not compile shows up in the dry run instead.
npx tsc -p tsconfig.json || true
