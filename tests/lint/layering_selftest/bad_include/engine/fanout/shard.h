#pragma once

#include "base/log.h"
