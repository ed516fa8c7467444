// Shared-library entry point for the ctypes harness (compiler/codegen/harness.py): the same
// host schedule as the testbench, exported as extern "C" spatten_run_model.
#include "host.h"
