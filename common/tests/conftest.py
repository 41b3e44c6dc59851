pytest_plugins = ["bertfam.testing"]  # shared_data, minilm_dir, http_server
