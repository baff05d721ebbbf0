/* fixed: the /process service with a store that expires entries (fixed/store.c). */
#include "svc.h"

int main(int argc, char **argv)
{
    return svc_main(argc, argv);
}
