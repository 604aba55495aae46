#pragma once

void log_line();
