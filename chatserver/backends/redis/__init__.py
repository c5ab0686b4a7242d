"""The Redis backends: one server or a cluster shared by every node (`conn` connects and names keys;
the scripts are `lua/*.lua`, loaded at import)."""
