# The OCI client also parses sources.yml (libyaml) and JSON (jansson), and checks PEM
# certificates with OpenSSL.
if(TARGET pw_oci)
  get_target_property(_pw_oci_type pw_oci TYPE)
  if(NOT _pw_oci_type STREQUAL "INTERFACE_LIBRARY")
    target_link_libraries(pw_oci PUBLIC PkgConfig::YAML PkgConfig::JANSSON PkgConfig::CRYPTO)
  endif()
endif()
