// A stub PJRT plugin for prism's tests: it implements just enough of the
// PJRT C API (gopjrt's pjrt_c_api.h) to be loaded — GetPjrtApi, the error
// functions, plugin initialisation and attributes — and reports the API
// version STUB_MAJOR.STUB_MINOR. Creating a client fails with an error
// message, as a real plugin does on a machine without its device. Tests
// build it with: cc -shared -fPIC -I <gopjrt>/pjrt -DSTUB_MAJOR=0 -DSTUB_MINOR=99.
#include <stdlib.h>
#include <string.h>

#include "pjrt_c_api.h"

#ifndef STUB_MAJOR
#define STUB_MAJOR 0
#endif
#ifndef STUB_MINOR
#define STUB_MINOR 99
#endif

struct PJRT_Error {
  const char* message;
};

static void stub_error_destroy(PJRT_Error_Destroy_Args* args) { free(args->error); }

static void stub_error_message(PJRT_Error_Message_Args* args) {
  args->message = args->error->message;
  args->message_size = strlen(args->error->message);
}

static PJRT_Error* stub_error_get_code(PJRT_Error_GetCode_Args* args) {
  args->code = PJRT_Error_Code_UNAVAILABLE;
  return NULL;
}

static PJRT_Error* stub_plugin_initialize(PJRT_Plugin_Initialize_Args* args) { return NULL; }

static PJRT_NamedValue stub_attributes[1];

static PJRT_Error* stub_plugin_attributes(PJRT_Plugin_Attributes_Args* args) {
  static const char name[] = "stub_version";
  static const char value[] = "prism-test-stub";
  stub_attributes[0].struct_size = PJRT_NamedValue_STRUCT_SIZE;
  stub_attributes[0].name = name;
  stub_attributes[0].name_size = sizeof(name) - 1;
  stub_attributes[0].type = PJRT_NamedValue_kString;
  stub_attributes[0].string_value = value;
  stub_attributes[0].value_size = sizeof(value) - 1;
  args->attributes = stub_attributes;
  args->num_attributes = 1;
  return NULL;
}

static PJRT_Error* stub_client_create(PJRT_Client_Create_Args* args) {
  PJRT_Error* err = malloc(sizeof(PJRT_Error));
  err->message = "stub PJRT plugin: no device here (prism test stub)";
  return err;
}

static PJRT_Api stub_api;

const PJRT_Api* GetPjrtApi(void) {
  memset(&stub_api, 0, sizeof(stub_api));
  stub_api.struct_size = PJRT_Api_STRUCT_SIZE;
  stub_api.pjrt_api_version.struct_size = PJRT_Api_Version_STRUCT_SIZE;
  stub_api.pjrt_api_version.major_version = STUB_MAJOR;
  stub_api.pjrt_api_version.minor_version = STUB_MINOR;
  stub_api.PJRT_Error_Destroy = stub_error_destroy;
  stub_api.PJRT_Error_Message = stub_error_message;
  stub_api.PJRT_Error_GetCode = stub_error_get_code;
  stub_api.PJRT_Plugin_Initialize = stub_plugin_initialize;
  stub_api.PJRT_Plugin_Attributes = stub_plugin_attributes;
  stub_api.PJRT_Client_Create = stub_client_create;
  return &stub_api;
}
