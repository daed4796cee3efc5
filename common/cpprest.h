#pragma once

// The one place that includes cpprestsdk. cpprestsdk defines a macro `U(x)` that breaks
// GoogleTest and other templates unless _TURN_OFF_PLATFORM_STRING is defined first
// (DESIGN.md section 8): include this header, never a cpprest header directly.
#ifndef _TURN_OFF_PLATFORM_STRING
#define _TURN_OFF_PLATFORM_STRING
#endif
#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>
#include <cpprest/json.h>
