// Host-side schedule constants of the golden-small design (testbench only).
#ifndef SPATTEN_HOST_PARAMS_H
#define SPATTEN_HOST_PARAMS_H

static const bool GENERATION = false;
static const int SEQ_LEN = 12;

#endif
