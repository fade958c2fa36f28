"""The plugin's UI: plain ES modules served by tb_cnnviz.plugin (package data)."""
