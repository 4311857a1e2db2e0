ALTER ROLE witchcraft_app NOLOGIN;
