#pragma once

#include "wire/frame.h"

void log_line();
