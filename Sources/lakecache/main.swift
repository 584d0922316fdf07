print("lakecache")
