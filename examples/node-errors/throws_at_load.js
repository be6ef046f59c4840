'use strict';
// 443 InitError: an exception while the module loads.
throw new Error('cannot initialise: DATABASE_URL is not set');
